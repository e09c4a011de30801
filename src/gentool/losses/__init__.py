"""Loss objects the methods call: decoder likelihoods and reconstruction losses (this issue),
adversarial losses and penalties (the GAN family). Imports nothing of gentool but errors."""
