"""Models and their training: architectures, recipes, the training loop, resumable state, logs,
devices and DDP (paper Sec. 4.1).
"""
