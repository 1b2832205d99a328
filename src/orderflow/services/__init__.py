"""Services: each runs alone or together; they share only domain, ports and the envelope."""
