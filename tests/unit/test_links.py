"""Links in notifications open the pages the routes declare (workers have no router to ask)."""

from __future__ import annotations

from app import links
from app.main import create_app
from tests.conftest import make_settings


def test_notification_links_are_the_routes_paths() -> None:
    app = create_app(make_settings(), app_url="postgresql://nobody@127.0.0.1:1/none")
    base = "https://app.example"
    assert links.business_page(base, "demo-salon") == base + app.route_reverse(
        "miniapp:business", slug="demo-salon"
    )
    assert links.booking_page(base, 42) == base + app.route_reverse(
        "miniapp:booking", booking_id=42
    )
    assert links.booking_page(base, 42) == "https://app.example/app/bookings/42"
