"""``js.nn``: small layers written only with ``get_variable`` and scopes.

Every layer is a plain function that opens a variable scope, by default
named as TF1 named the layer (``dense``, ``lstm_cell``, ``LayerNorm``, …)
and uniquified as TF1's functional layers were (``dense``, ``dense_1``, …);
give ``name=`` to choose it, and ``reuse=True`` to share the variables of an
earlier call. Variables inside take TF1's names (``kernel``, ``bias``,
``gamma``, ``beta``, …), so TF1 checkpoints map onto them by name.

=============================  =============================================
layer                          variables (under the layer's scope)
=============================  =============================================
``dense``                      ``kernel``, ``bias``
``embedding`` / ``.attend``    ``embeddings``
``layer_norm``                 ``beta``, ``gamma`` (scope ``LayerNorm``)
``dropout``                    none (keys from ``js.next_rng_key``)
``lstm_cell``                  ``kernel``, ``bias`` (gates i, j, f, o)
``gru_cell``                   ``gates/kernel``, ``gates/bias``,
                               ``candidate/kernel``, ``candidate/bias``
``bahdanau_attention``         ``query_layer/kernel``, ``attention_v``
``luong_attention``            ``attention_g`` (with ``scale``)
``multi_head_attention``       ``query``, ``key``, ``value``, ``output``
=============================  =============================================
"""

from jaxscope.nn.attention import bahdanau_attention, luong_attention, masked_softmax
from jaxscope.nn.dropout import dropout
from jaxscope.nn.embedding import embedding, embedding_attend
from jaxscope.nn.linear import dense
from jaxscope.nn.multi_head import causal_mask, multi_head_attention
from jaxscope.nn.normalization import layer_norm
from jaxscope.nn.recurrent import LSTMState, gru_cell, lstm_cell

__all__ = [
    "LSTMState",
    "bahdanau_attention",
    "causal_mask",
    "dense",
    "dropout",
    "embedding",
    "embedding_attend",
    "gru_cell",
    "layer_norm",
    "lstm_cell",
    "luong_attention",
    "masked_softmax",
    "multi_head_attention",
]
