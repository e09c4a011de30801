"""Loss objects the methods call: decoder likelihoods and reconstruction losses, adversarial
losses and penalties. Imports nothing of gentool but errors."""
