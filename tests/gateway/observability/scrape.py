"""Reading a live ``/metrics`` with prometheus-client's own text parser."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass
class Scrape:
    text: str
    # sample name -> {labels: value}
    samples: dict[str, dict[Labels, float]] = field(default_factory=dict)
    # family name -> type
    families: dict[str, str] = field(default_factory=dict)

    def series(self, name: str, **match: str) -> dict[Labels, float]:
        """The samples of ``name`` whose labels include ``match``."""
        wanted = set(match.items())
        return {k: v for k, v in self.samples.get(name, {}).items() if wanted <= k}

    def value(self, name: str, **labels: str) -> float:
        """The one sample of ``name`` with exactly these labels."""
        return self.samples[name][frozenset(labels.items())]


def scrape(base_url: str) -> Scrape:
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    result = Scrape(text)
    for family in text_string_to_metric_families(text):
        result.families[family.name] = family.type
        for sample in family.samples:
            labels = frozenset(sample.labels.items())
            result.samples.setdefault(sample.name, {})[labels] = sample.value
    return result


def labels(**pairs: str) -> Labels:
    return frozenset(pairs.items())


def exported_names(scraped: Scrape) -> set[str]:
    """Every name a PromQL query could select in this scrape, including the
    series of families that have no samples yet (a histogram before its first
    observation still exports ``_bucket``, ``_sum`` and ``_count`` later)."""
    names = set(scraped.samples)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for family, kind in scraped.families.items():
        names.update(family + suffix for suffix in suffixes.get(kind, ("",)))
    return names


DASHBOARD = Path(__file__).resolve().parents[3] / "deploy/grafana/dashboards/vllm-gateway.json"
_NOT_METRICS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panels and template variables."""
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query["query"]))
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # label matchers, ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\w)(\s*\()?", expr):
        word = match.group().rstrip(" (")
        if match.group(1) is None and word not in _NOT_METRICS:
            names.add(word)  # not followed by "(": not a function or aggregation
    return names
