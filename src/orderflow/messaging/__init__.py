"""How messages travel: the versioned envelope every service and broker engine shares."""
