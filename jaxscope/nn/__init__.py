"""``js.nn``: small layers written only with ``get_variable`` and scopes.

Every layer is a plain function that opens a variable scope, by default
named as TF1 named the layer (``dense``, ``conv2d``, ``lstm_cell``,
``LayerNorm``, …) and uniquified as TF1's functional layers were
(``dense``, ``dense_1``, …); give ``name=`` to choose it, and ``reuse=True``
to share the variables of an earlier call. Variables inside take TF1's
names, shapes and layouts (``kernel``, ``bias``, ``gamma``, ``beta``, …), so
TF1 checkpoints map onto them by name, and the defaults are TF1's.

A layer computes in the dtype of the params it is handed: its input is
cast to its kernel's (or table's) dtype, so a custom getter handing out
bfloat16 copies of float32 params (``js.precision``) makes it compute in
bfloat16. Normalization statistics and softmaxes run in float32 whatever
the dtype, and their results come back in it.

=============================  =============================================
layer                          variables (under the layer's scope)
=============================  =============================================
``dense``                      ``kernel``, ``bias``
``conv1d``, ``conv2d``         ``kernel`` (``[k..., in, filters]``), ``bias``
``conv2d_transpose``           ``kernel`` (``[kh, kw, filters, in]``), ``bias``
``batch_norm``                 ``gamma``, ``beta``; state ``moving_mean``,
                               ``moving_variance``
``embedding`` / ``.attend``    ``embeddings``
``layer_norm``                 ``beta``, ``gamma`` (scope ``LayerNorm``)
``dropout``, ``tf1_dropout``   none (keys from ``js.next_rng_key``)
``lstm_cell``                  ``kernel``, ``bias`` (gates i, j, f, o)
``gru_cell``                   ``gates/kernel``, ``gates/bias``,
                               ``candidate/kernel``, ``candidate/bias``
``multi_rnn_cell``             ``cell_<i>/<cell's variables>``
``dynamic_rnn``                ``rnn/<cell's variables>``
``bidirectional_dynamic_rnn``  ``bidirectional_rnn/fw|bw/<cell's variables>``
``bahdanau_attention``         ``query_layer/kernel``, ``attention_v``
``luong_attention``            ``attention_g`` (with ``scale``)
``multi_head_attention``       ``query``, ``key``, ``value``, ``output``
``memory_cache``               ``key``, ``value`` of a ``multi_head_attention``
``sequence_loss``              none
=============================  =============================================
"""

from jaxscope._src.nn.attention import bahdanau_attention, luong_attention, masked_softmax
from jaxscope._src.nn.batch_norm import batch_norm
from jaxscope._src.nn.conv import conv1d, conv2d, conv2d_transpose
from jaxscope._src.nn.dropout import dropout, tf1_dropout
from jaxscope._src.nn.embedding import embedding, embedding_attend
from jaxscope._src.nn.linear import dense
from jaxscope._src.nn.losses import sequence_loss
from jaxscope._src.nn.multi_head import (
    KVCache,
    causal_mask,
    memory_cache,
    multi_head_attention,
)
from jaxscope._src.nn.normalization import layer_norm
from jaxscope._src.nn.recurrent import LSTMState, gru_cell, lstm_cell
from jaxscope._src.nn.rnn import bidirectional_dynamic_rnn, dynamic_rnn, multi_rnn_cell

__all__ = [
    "KVCache",
    "LSTMState",
    "bahdanau_attention",
    "batch_norm",
    "bidirectional_dynamic_rnn",
    "causal_mask",
    "conv1d",
    "conv2d",
    "conv2d_transpose",
    "dense",
    "dropout",
    "dynamic_rnn",
    "embedding",
    "embedding_attend",
    "gru_cell",
    "layer_norm",
    "lstm_cell",
    "luong_attention",
    "masked_softmax",
    "memory_cache",
    "multi_head_attention",
    "multi_rnn_cell",
    "sequence_loss",
    "tf1_dropout",
]
