"""What the API's routes need, built once by bootstrap and kept on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from orderflow.adapters.db.engine import Database
from orderflow.ports.identity import IdentityVerifier
from orderflow.services.api.catalog_cache import CatalogCache
from orderflow.services.api.intake import OrderIntake


@dataclass
class ApiContext:
    db: Database
    intake: OrderIntake
    catalog: CatalogCache
    verifier: IdentityVerifier
