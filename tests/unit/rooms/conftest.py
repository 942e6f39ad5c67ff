from tests.unit.rooms.kit import kit  # noqa: F401  (fixture)
