"""The app's two routers: :mod:`.api` (the REST API under /api) and :mod:`.pages` (the dashboard)."""
