"""One problem+json for the order API and the gateway: titles are the status's reason phrase
unless a route gives its own, and nothing a client sent is echoed back."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Form
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from orderflow.web import problems
from orderflow.web.problems import ProblemError, reason_phrase

SECRET = "hunter2-do-not-echo"


class Login(BaseModel):
    email: str = Field(max_length=10)
    password: str = Field(min_length=30)


def fastapi_app() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/json")
    async def json_body(body: Login) -> dict[str, str]:
        return {}

    @app.post("/form")
    async def form_body(form: Annotated[Login, Form()]) -> dict[str, str]:
        return {}

    @app.get("/specific")
    async def specific() -> None:
        raise ProblemError(422, "Order cannot be priced", "no such sku", reason="unpriced")

    @app.get("/generic")
    async def generic() -> None:
        raise ProblemError(409, detail="already shipped", headers={"Retry-After": "3"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"postgresql://app:{SECRET}@10.0.0.7/orders")

    return app


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (400, "Bad Request"),
        (413, "Content Too Large"),
        (422, "Unprocessable Content"),
        (599, "Error"),
    ],
)
def test_titles_are_rfc_9110_reason_phrases(status: int, title: str) -> None:
    assert reason_phrase(status) == title
    assert ProblemError(status).title == title


async def test_specific_and_generic_titles() -> None:
    async with client(fastapi_app()) as http:
        specific = await http.get("/specific")
        generic = await http.get("/generic")
        missing = await http.get("/nowhere")
        wrong_method = await http.delete("/specific")
    assert specific.status_code == 422
    assert specific.headers["content-type"] == "application/problem+json"
    assert specific.json() == {
        "type": "about:blank",
        "title": "Order cannot be priced",
        "status": 422,
        "detail": "no such sku",
        "reason": "unpriced",
    }
    assert generic.json()["title"] == "Conflict"
    assert generic.headers["retry-after"] == "3"
    assert (missing.status_code, missing.json()["title"]) == (404, "Not Found")
    assert (wrong_method.status_code, wrong_method.json()["title"]) == (405, "Method Not Allowed")
    assert wrong_method.headers["allow"] == "GET"
    for response in (missing, wrong_method):
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("kind", ["json", "form"])
async def test_validation_names_fields_and_never_echoes_values(kind: str) -> None:
    sent = {"email": "x" * 11, "password": SECRET}
    async with client(fastapi_app()) as http:
        response = await (
            http.post("/json", json=sent) if kind == "json" else http.post("/form", data=sent)
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Unprocessable Content"
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("body", "email"),
        ("body", "password"),
    }
    assert "body.password" in problem["detail"]
    assert SECRET not in response.text
    assert "x" * 11 not in response.text


async def test_malformed_json_is_400() -> None:
    async with client(fastapi_app()) as http:
        response = await http.post(
            "/json",
            content=b'{"password": "' + SECRET.encode(),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["title"] == "Bad Request"
    assert "not valid JSON" in response.json()["detail"]
    assert SECRET not in response.text


async def test_unexpected_errors_say_nothing_of_their_cause() -> None:
    async with client(fastapi_app()) as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Internal Server Error"
    assert SECRET not in response.text
    assert "10.0.0.7" not in response.text


async def test_the_same_answers_from_a_starlette_app() -> None:
    async def refuse(_: Request) -> None:
        raise ProblemError(403, detail="not yours")

    app = Starlette(routes=[Route("/refuse", refuse)])
    problems.install(app)
    async with client(app) as http:
        refused, missing = await http.get("/refuse"), await http.get("/nowhere")
    assert refused.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "not yours",
    }
    assert (missing.status_code, missing.json()["title"]) == (404, "Not Found")
    assert missing.headers["content-type"] == "application/problem+json"
