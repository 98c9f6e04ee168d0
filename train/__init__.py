"""stylecam.train: generators, the VGG16 perceptual loss and the trainer (needs the ``train`` extra: torch)."""
