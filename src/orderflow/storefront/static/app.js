// The storefront: plain JavaScript against the public API and the live stream, through the
// gateway. Errors are turned into a shopper's words; problem+json never reaches the page.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("token"), email: sessionStorage.getItem("email"),
                products: [], cart: new Map(), orders: new Map(), current: null,
                lastEventId: null, socket: null,
                // Live changes by order, kept for the order being opened: one that arrives while
                // its GET is on the way is in neither the answer nor the page otherwise.
                live: new Map() };
const CANCELLABLE = new Set(["pending", "reserved", "paid", "confirmed"]);
const STATUS_WORDS = { pending: "received", reserved: "items reserved", paid: "paid",
  confirmed: "confirmed", shipped: "shipped", delivered: "delivered", rejected: "not available",
  payment_failed: "payment declined", cancelled: "cancelled", failed: "failed: we are looking into it" };

class ShopError extends Error {}

function money(m) { return `${(m.amount / 100).toFixed(2)} ${m.currency}`; }

function say(text, ok = false) { $("notice").textContent = text; $("notice").className = ok ? "ok" : ""; }

function words(status, problem) {
  const detail = (problem && (problem.detail || problem.title)) || "";
  if (status === 401) return "Please sign in (again): your session has ended or the email and password do not match.";
  if (status === 409) return "This order can no longer be cancelled.";
  if (status === 429 || status === 503) return "The shop is busy right now. Please try again in a moment.";
  if (status === 413) return "That was too much at once. Please order fewer items.";
  if (status === 422 && /stock|sku/i.test(detail)) return "Sorry, an item in your cart is not available.";
  if (status === 422 || status === 400) return "Some details are missing or not valid. Please check the form.";
  if (status === 404) return "We could not find that.";
  return "Something went wrong on our side. Please try again.";
}

function reasonWords(order) {
  const reason = (order.status_reason || order.reason || "").toLowerCase();
  if (order.status === "payment_failed") {
    return reason.includes("insufficient") ? "Your card was declined: not enough funds." : "Your card was declined.";
  }
  if (order.status === "rejected") return "Sorry, an item ran out of stock. You have not been charged.";
  if (order.status === "cancelled") return "Cancelled. Any payment is refunded.";
  return "";
}

async function call(path, { method = "GET", body, form, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (form) { init.body = new URLSearchParams(form); }
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  let response;
  try { response = await fetch(path, init); }
  catch { throw new ShopError("We cannot reach the shop. Please check your connection."); }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && state.token && !path.startsWith("/auth/token")) signOut();
    throw new ShopError(words(response.status, data));
  }
  return data;
}

async function guarded(action) {
  try { say(""); await action(); }
  catch (e) { say(e instanceof ShopError ? e.message : "Something went wrong. Please try again."); }
}

// --- account ------------------------------------------------------------------------------

async function signIn(email, password) {
  const data = await call("/auth/token", { method: "POST", form: { username: email, password } });
  state.token = data.access_token; state.email = email;
  sessionStorage.setItem("token", state.token); sessionStorage.setItem("email", email);
  await enterShop();
}

function signOut() {
  state.token = null; sessionStorage.clear();
  if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
  $("shop").hidden = true; $("account").hidden = false; $("sign-out").hidden = true; $("who").textContent = "";
}

async function enterShop() {
  $("account").hidden = true; $("shop").hidden = false; $("sign-out").hidden = false;
  $("who").textContent = `Signed in as ${state.email}`;
  connectLive();
  await Promise.all([loadProducts(), loadOrders()]);
}

// --- catalog and cart ---------------------------------------------------------------------

async function loadProducts() {
  const page = await call("/api/v1/products?limit=50");
  state.products = page.items;
  const list = $("products"); list.replaceChildren();
  for (const p of page.items) {
    const li = document.createElement("li");
    li.innerHTML = `<strong></strong><br><span></span><br><span class="muted"></span><br>`;
    li.children[0].textContent = p.name;
    li.children[2].textContent = money(p.price);
    li.children[4].textContent = p.available > 0 ? `${p.available} in stock` : "Out of stock";
    const add = document.createElement("button");
    add.type = "button"; add.textContent = "Add to cart"; add.disabled = p.available <= 0;
    add.setAttribute("aria-label", `Add ${p.name} to cart`);
    add.addEventListener("click", () => { state.cart.set(p.sku, (state.cart.get(p.sku) || 0) + 1); renderCart(); });
    li.append(add); list.append(li);
  }
}

function renderCart() {
  const list = $("cart"); list.replaceChildren();
  let total = 0, currency = "";
  for (const [sku, qty] of state.cart) {
    const p = state.products.find((x) => x.sku === sku);
    total += p.price.amount * qty; currency = p.price.currency;
    const li = document.createElement("li");
    li.textContent = `${qty} × ${p.name} `;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "secondary"; remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${p.name}`);
    remove.addEventListener("click", () => { state.cart.delete(sku); renderCart(); });
    li.append(remove); list.append(li);
  }
  $("cart-total").textContent = state.cart.size ? `Total: ${money({ amount: total, currency })}` : "Your cart is empty.";
}

async function placeOrder() {
  if (!state.cart.size) throw new ShopError("Your cart is empty: add a product first.");
  const body = {
    items: [...state.cart].map(([sku, quantity]) => ({ sku, quantity })),
    payment: { token: $("card").value },
    shipping_address: { name: $("ship-name").value, line1: $("ship-line1").value, city: $("ship-city").value,
                        postal_code: $("ship-postal").value, country: $("ship-country").value.toUpperCase() },
  };
  const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  const order = await call("/api/v1/orders", { method: "POST", body, headers: { "Idempotency-Key": key } });
  state.cart.clear(); renderCart();
  say("Thank you! Your order is placed; watch its status below.", true);
  await showOrder(order.id);
  await loadOrders();
}

// --- orders -------------------------------------------------------------------------------

async function loadOrders() {
  const page = await call("/api/v1/orders?limit=20");
  for (const o of page.items) state.orders.set(o.id, o);
  renderOrders();
}

function renderOrders() {
  const list = $("orders"); list.replaceChildren();
  for (const o of [...state.orders.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1))) {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button"; open.className = "secondary";
    open.textContent = `${new Date(o.created_at).toLocaleString()}: ${money(o.total)}`;
    open.setAttribute("aria-label", `Show order from ${new Date(o.created_at).toLocaleString()}`);
    open.addEventListener("click", () => guarded(() => showOrder(o.id)));
    const status = document.createElement("span");
    status.className = "status"; status.dataset.orderId = o.id;
    status.textContent = ` ${STATUS_WORDS[o.status] || o.status}`;
    li.append(open, status); list.append(li);
  }
}

async function showOrder(id) {
  const order = await call(`/api/v1/orders/${id}`);
  state.current = { id, versions: new Set(), status: order.status, reason: order.status_reason };
  $("order-view").hidden = false;
  $("order-title").textContent = `Order ${id.slice(0, 8)}`;
  $("order-timeline").replaceChildren();
  for (const e of order.timeline) if (e.status !== e.previous_status) addStep(e.seq, e.status, e.at);
  for (const message of state.live.get(id) || []) applyToCurrent(message);
  renderCurrent();
}

function applyToCurrent(message) {
  const c = state.current;
  addStep(message.version, message.status, message.at);
  if (message.version >= Math.max(...c.versions)) { c.status = message.status; c.reason = message.reason; }
}

function remember(message) {
  const seen = state.live.get(message.order_id) || [];
  seen.push(message);
  state.live.delete(message.order_id);
  state.live.set(message.order_id, seen);  // most recent last
  if (state.live.size > 50) state.live.delete(state.live.keys().next().value);
}

function addStep(version, status, at) {
  if (state.current.versions.has(version)) return;
  state.current.versions.add(version);
  const li = document.createElement("li");
  li.dataset.version = version;
  li.textContent = `${STATUS_WORDS[status] || status} (${new Date(at).toLocaleTimeString()})`;
  const items = [...$("order-timeline").children];
  const after = items.find((x) => Number(x.dataset.version) > version);
  $("order-timeline").insertBefore(li, after || null);
}

function renderCurrent() {
  const c = state.current;
  $("order-status").textContent = STATUS_WORDS[c.status] || c.status;
  $("order-status").dataset.status = c.status;
  $("order-reason").textContent = reasonWords({ status: c.status, reason: c.reason });
  $("cancel-order").hidden = !CANCELLABLE.has(c.status);
}

async function cancelCurrent() {
  await call(`/api/v1/orders/${state.current.id}/cancel`, { method: "POST", body: { reason: "changed my mind" } });
  say("Your order is cancelled. Any payment will be refunded.", true);
}

// --- live status --------------------------------------------------------------------------

async function connectLive() {
  if (!state.token || state.socket) return;
  let ticket;
  try { ticket = (await call("/auth/ticket", { method: "POST" })).ticket; }
  catch { setTimeout(connectLive, 3000); return; }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
  state.socket = socket;
  socket.onopen = () => socket.send(JSON.stringify({ type: "subscribe", scope: "mine",
                                                     ...(state.lastEventId ? { last_event_id: state.lastEventId } : {}) }));
  socket.onmessage = (event) => onLive(JSON.parse(event.data));
  socket.onclose = () => { state.socket = null; if (state.token) setTimeout(connectLive, 1000); };
}

function onLive(message) {
  if (message.id) state.lastEventId = message.id;
  if (message.type === "resync_required") { loadOrders().catch(() => {}); if (state.current) showOrder(state.current.id).catch(() => {}); return; }
  if (message.type !== "status") return;
  remember(message);
  const known = state.orders.get(message.order_id);
  if (known) { known.status = message.status; known.status_reason = message.reason; renderOrders(); }
  else loadOrders().catch(() => {});
  const c = state.current;
  if (c && c.id === message.order_id) {
    applyToCurrent(message);
    renderCurrent();
  }
}

// --- wiring -------------------------------------------------------------------------------

$("sign-in-form").addEventListener("submit", (e) => { e.preventDefault(); guarded(() => signIn($("email").value, $("password").value)); });
$("register").addEventListener("click", () => guarded(async () => {
  if (!$("sign-in-form").reportValidity()) return;
  await call("/auth/register", { method: "POST", body: { email: $("email").value, password: $("password").value, name: $("name").value || $("email").value } });
  await signIn($("email").value, $("password").value);
}));
$("sign-out").addEventListener("click", signOut);
$("checkout").addEventListener("submit", (e) => { e.preventDefault(); guarded(placeOrder); });
$("cancel-order").addEventListener("click", () => guarded(cancelCurrent));
renderCart();
if (state.token) guarded(enterShop);
