"""Reading a process's /metrics as Prometheus would: scrape, parse, sum the matching samples."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    samples: list[tuple[str, dict[str, str], float]]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls(
            [
                (s.name, dict(s.labels), s.value)
                for family in text_string_to_metric_families(text)
                for s in family.samples
            ]
        )

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            v
            for n, have, v in self.samples
            if n == name and all(have.get(k) == want for k, want in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        """Whether a sample named `name` with these labels is exposed at all."""
        return any(
            n == name and all(have.get(k) == want for k, want in labels.items())
            for n, have, _ in self.samples
        )

    def __add__(self, other: Scrape) -> Scrape:
        return Scrape(self.samples + other.samples)


def scrape(url: str, headers: Mapping[str, str] | None = None) -> Scrape:
    """GET `url`/metrics; fails unless it answers 200 in the Prometheus text format."""
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return Scrape.parse(response.text)


def scrape_all(urls: list[str]) -> Scrape:
    """Several processes of one kind, added up as PromQL's sum() would."""
    total = Scrape([])
    for url in urls:
        total = total + scrape(url)
    return total
