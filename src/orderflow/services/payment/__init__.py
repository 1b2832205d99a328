"""The payment service: captures and refunds through the PaymentGateway port."""
