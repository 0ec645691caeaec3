"""The embedded models: corpus, tokenizer, pretraining, builder and cards.

One family record (:mod:`lensbook.embedded.families`) gives the models' names, folders
(``ASSETS``) and card texts.
"""
