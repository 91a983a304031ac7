"""funnelkit: a research kit for e-commerce conversion funnels."""
__version__ = "0.1.0"
