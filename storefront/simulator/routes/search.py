"""``POST /cs/v2/search``: the search service that fills the banners (§3)."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from ..record_query import BadRecordQuery, QueryResult, run_record_query
from ..state import demo, recorded, state
from .guards import Rejected, journal_rejection, simulate_faults

bp = Blueprint("search", __name__, url_prefix="/cs/v2")
bp.before_request(simulate_faults("search"))


@bp.errorhandler(Rejected)
def search_rejected(exc: Rejected):
    """Klevu's search reports errors in ``meta.error``, not in a top-level ``error``."""
    journal_rejection(exc)
    return jsonify(
        meta={"qTime": 0, "responseCode": exc.status, "error": exc.message}, queryResults=[]
    ), exc.status


def read_search_request(body: object) -> tuple[dict, list[dict]]:
    """``(context, recordQueries)``, checked only as far as every query needs."""
    if not isinstance(body, dict) or not isinstance(body.get("context"), dict):
        raise Rejected(400, "body must be an object with a context")
    context, queries = body["context"], body.get("recordQueries")
    keys = context.get("apiKeys")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise Rejected(400, "context.apiKeys must be a list of api keys")
    if (
        not isinstance(queries, list)
        or not queries
        or not all(isinstance(q, dict) and isinstance(q.get("id"), str) for q in queries)
    ):
        raise Rejected(
            400, "recordQueries must be a non-empty list of {id, typeOfRequest, settings}"
        )
    if demo().api_key not in keys:
        raise Rejected(404, "none of context.apiKeys is known")
    return context, queries


def _fields(record_query: dict) -> list[str] | None:
    fields = (record_query.get("settings") or {}).get("fields")
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise BadRecordQuery("settings.fields must be a list of field names")
    return fields


def query_result(record_query: dict, result: QueryResult, q_time: int) -> dict:
    """One ``queryResults`` entry; ``fields`` trims the records (``id`` always stays)."""
    fields = _fields(record_query)
    records = [
        dict(item.record)
        if fields is None
        else {k: v for k, v in item.record.items() if k == "id" or k in fields}
        for item in result.page
    ]
    return {
        "id": record_query["id"],
        "meta": {
            "qTime": q_time,
            "noOfResults": len(records),
            "totalResultsFound": result.total,
            "typeOfSearch": "WILDCARD_AND" if result.term.strip() in ("", "*") else "AND",
            "offset": (record_query.get("settings") or {}).get("offset", 0),
            "searchedTerm": result.term,
            "apiKey": demo().api_key,
            "isPersonalised": result.personalised,
        },
        "filters": [],
        "records": records,
    }


@bp.post("/search")
def search():
    started = time.perf_counter()
    context, queries = read_search_request(request.get_json(silent=True, force=True))
    answers = []
    live = recorded()
    for record_query in queries:
        if live is not None:
            answer = live.search(record_query)
            if answer is None:
                raise Rejected(404, f"no {record_query.get('typeOfRequest')} search was recorded")
            answers.append(answer)
            continue
        try:
            result = run_record_query(record_query, demo().index, context)
            answers.append(
                query_result(record_query, result, int((time.perf_counter() - started) * 1000))
            )
        except BadRecordQuery as exc:
            raise Rejected(400, f"record query {record_query['id']!r}: {exc}") from exc
    state().journal.call(
        "search",
        "search",
        200,
        {
            "queries": [
                {
                    "id": a["id"],
                    "typeOfRequest": q.get("typeOfRequest"),
                    "settings": q.get("settings"),
                    "results": (a.get("meta") or {}).get("noOfResults"),
                    "ids": [r.get("id") for r in a.get("records") or []],
                }
                for q, a in zip(queries, answers, strict=True)
            ]
        },
    )
    return jsonify(
        meta={"qTime": int((time.perf_counter() - started) * 1000), "responseCode": 200},
        queryResults=answers,
    )
