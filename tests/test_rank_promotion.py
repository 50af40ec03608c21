"""The test session runs with ``jax_numpy_rank_promotion="raise"`` (tests/conftest.py, as
equinox does; issue 12 item 8): every broadcast in the package between arrays of different
ranks is written out (``[..., None]``, ``jnp.expand_dims``, ``jnp.broadcast_to``), so a
shape mistake raises instead of broadcasting silently. This test fails if the flag is
removed."""

import jax
import jax.numpy as jnp
import pytest


def test_rank_promotion_raises_in_the_test_session():
    assert jax.config.jax_numpy_rank_promotion == "raise"
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion"):
        jnp.ones(3) + jnp.ones((2, 3))
    # explicit broadcasting and scalars stay allowed
    assert (jnp.ones(3)[None, :] + jnp.ones((2, 3))).shape == (2, 3)
    assert (2.0 * jnp.ones((2, 3))).shape == (2, 3)
