"""The arguments a banner's template is called with, built as JSv2 builds them (§4).

Pure functions of the config answer and the search: placement.py passes the result to the
renderer. JSv2 writes the ``maxProducts`` / ``productThreshold`` defaults into the metadata
before the template runs, gives a product banner ``data.query.<id>`` for every query search
answered (``{meta, filters, result}``) and ``data.settings`` (the search settings it sent),
and gives a STATIC_CONTENT banner the whole config answer as its ``data``. ``dataLocal`` and
``scope`` are left to the renderer's defaults (``data`` itself and the engine's scope object),
as JSv2 leaves them.
"""

from __future__ import annotations

from collections.abc import Mapping

from .queries import RECS_QUERY_ID, RecsMetadata


def metadata_with_defaults(metadata: Mapping) -> dict:
    """The metadata with §2's defaults written in, for counts missing or nonsensical."""
    limits = RecsMetadata.from_config(metadata)
    return {
        **metadata,
        "maxProducts": limits.max_products,
        "productThreshold": limits.product_threshold,
    }


def product_banner_data(
    config: Mapping, records: list[dict], query_results: list, search_body: Mapping
) -> dict:
    """``data`` for a banner of products: each query's answer by id as JSv2 gives it
    (``meta``, ``filters`` and ``result``, each when the answer has it; the recommendations'
    ``result`` is ``records``, the ones shown), the metadata and the search settings."""
    query = {
        answer["id"]: {
            name: answer[field]
            for name, field in (("meta", "meta"), ("filters", "filters"), ("result", "records"))
            if field in answer
        }
        for answer in query_results
        if isinstance(answer, Mapping) and isinstance(answer.get("id"), str)
    }
    query[RECS_QUERY_ID] = {**query.get(RECS_QUERY_ID, {}), "result": records}
    return {
        "query": query,
        "metadata": metadata_with_defaults(config["metadata"]),
        "settings": search_settings(search_body),
    }


def static_banner_data(config: Mapping) -> dict:
    """``data`` for a STATIC_CONTENT banner: the whole config answer, metadata completed."""
    return {**config, "metadata": metadata_with_defaults(config["metadata"])}


def search_settings(search_body: Mapping) -> dict:
    """The settings of the recommendations query that was searched (its "search context")."""
    queries = search_body.get("recordQueries") or []
    query = next(
        (q for q in queries if isinstance(q, Mapping) and q.get("id") == RECS_QUERY_ID), {}
    )
    settings = query.get("settings")
    return dict(settings) if isinstance(settings, Mapping) else {}
