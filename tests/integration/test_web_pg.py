"""The API's isolation contract on PostgreSQL: the same tests as on DuckDB, against a real server.

The web layer writes its own SQL (joins, unnest, ``= ANY``, ``ON CONFLICT``) through the store's
primitives; this runs every API test of tests/unit/test_web_api.py on a PostgreSQL store of our own
(tests/pg.py), so the owner scope holds on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cleartext.store import open_store
from tests.pg import PostgresServer, postgres_server
from tests.unit.test_web_api import (  # noqa: F401 - collected here, with this module's fixtures
    World,
    build_world,
    test_a_store_error_body_says_only_that,
    test_default_scan_is_the_latest_and_pages_are_stable,
    test_detail_of_another_owners_endpoint_is_404,
    test_downloads_hold_only_owned_rows,
    test_endpoint_detail_has_remediation_for_its_software,
    test_endpoint_lists_are_exactly_the_owned_ones,
    test_every_time_is_iso_8601_utc_with_z,
    test_filters_never_widen_the_scope,
    test_findings_lists_are_exactly_the_owned_ones,
    test_out_of_range_parameters_are_422_in_our_words,
    test_scans_and_statistics_count_only_owned_rows,
    test_the_largest_offset_is_an_empty_page,
    test_unknown_scan_and_bad_filters,
    web_app,
)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def world(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("web-pg"), store_url=pg.create_database())


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    store = open_store(world.url, create=False)
    try:
        assert type(store).__name__ == "PostgresStore"
        with TestClient(web_app(world, store)) as test_client:
            yield test_client
    finally:
        store.close()
