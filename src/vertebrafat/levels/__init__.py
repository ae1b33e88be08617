"""Vertebral levels: split the body mask into instances, find the sacrum and the rib-bearing T12,
and name the bodies L1-L5 (pure numpy)."""
