"""The API's routers, one per resource: fleet (hosts, domains, guests, fabric, windows), plans, control."""
