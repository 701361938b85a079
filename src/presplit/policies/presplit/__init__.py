"""presplit's own policy: predictive placement, balancing and recombination."""
