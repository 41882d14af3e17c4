"""Training from sparse annotations: ``train.fit`` and everything it needs. May use the model and
prediction (the live preview, the validation score), never the other way."""
