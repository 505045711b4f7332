def test_fixtures_reach_a_real_database(db, client, new_org):
    org = new_org()
    (version,) = db.execute("SHOW server_version_num").fetchone()
    assert int(version) >= 150000
    response = client.get("/v2/stats/storage", params={"scope": "org", "window": "24h"},
                          headers=org.headers)
    assert response.status_code == 200
    assert response.json()["summary"]["total"] == 0
