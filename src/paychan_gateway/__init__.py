"""paychan-gateway: a pay-per-request reverse proxy that takes RBPCP channel payments in an HTTP header."""
