"""What the API's routes need, built once by bootstrap and kept on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from orderflow.ports.identity import IdentityVerifier
from orderflow.ports.storage import Storage
from orderflow.services.api.catalog_cache import CatalogCache
from orderflow.services.orders.intake import OrderIntake


@dataclass
class ApiContext:
    db: Storage
    intake: OrderIntake
    catalog: CatalogCache
    verifier: IdentityVerifier
