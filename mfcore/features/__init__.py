"""What a model learns about its training data besides its parameters: the time axis
(:mod:`.time`) and the implicit feedback, who rated what (:mod:`.implicit`). Fitted once
per fit from the training ratings, saved with the model, and turned into per-rating
context columns and kernel side data."""
