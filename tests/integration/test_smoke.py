from tests.factories import create_business


async def test_health(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": "ok"}


async def test_services_listed(client, owner_session):
    business = await create_business(owner_session)
    await owner_session.commit()
    response = await client.get(
        f"/api/v1/businesses/{business.slug}/services", headers={"Accept-Language": "en"}
    )
    assert response.status_code == 200
    names = [s["name"] for s in response.json()["services"]]
    assert names == ["Haircut", "Brows"]
