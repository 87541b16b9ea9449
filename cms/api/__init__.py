"""The HTTP API: thin flask-smorest views over the service, one blueprint per resource."""
