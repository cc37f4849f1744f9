"""The compiled core: optimizers, the shared epoch loop, and the kernel dispatch.

Models never loop over batches themselves: they describe their parameters (a user table,
an item table, a flat vector of dense weights) and provide one forward/backward kernel;
``trainer.run_batches`` drives every model and optimizer inside one compiled call.
"""
