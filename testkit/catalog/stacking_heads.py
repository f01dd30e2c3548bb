"""Bug catalog for 04-stacking-heads."""

from testkit.catalog import compiled, correct, wrong

ASSIGNMENT = "04-stacking-heads"

WRAP = "MultiHeadAttentionWrapper"
STACK = "StackedCausalAttention"

_WRAP_INIT = '''
        class MultiHeadAttentionWrapper(nn.Module):
            def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
                super().__init__()'''

_HEADS = '''
                self.heads = nn.ModuleList(
                    CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)
                    for _ in range(num_heads))'''

_STACK_INIT = '''
        class StackedCausalAttention(nn.Module):
            def __init__(self, d_model, context_length, num_layers, dropout=0.0, qkv_bias=False):
                super().__init__()'''

_LAYERS = '''
                self.layers = nn.ModuleList(
                    CausalAttention(d_model, d_model, context_length, dropout, qkv_bias)
                    for _ in range(num_layers))'''

CASES = [
    wrong("heads_share_one_module", WRAP, "[head] * num_heads: one module repeated", f'''{_WRAP_INIT}
                head = CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)
                self.heads = nn.ModuleList([head] * num_heads)

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("heads_in_python_list", WRAP, "a plain list: the heads are not registered", f'''{_WRAP_INIT}
                self.heads = [CausalAttention(d_in, d_out, context_length, dropout, qkv_bias)
                              for _ in range(num_heads)]

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("concat_on_tokens", WRAP, "torch.cat(..., dim=1): heads stacked along tokens",
          f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=1)
        '''),
    wrong("heads_interleaved", WRAP, "stack on the last dim then flatten: features interleaved",
          f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                return torch.stack([head(x) for head in self.heads], dim=-1).flatten(-2)
        '''),
    wrong("heads_reversed", WRAP, "heads concatenated in reverse order", f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                return torch.cat([head(x) for head in reversed(self.heads)], dim=-1)
        '''),
    wrong("heads_summed", WRAP, "outputs added instead of concatenated", f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                return sum(head(x) for head in self.heads)
        '''),
    wrong("d_out_split_across_heads", WRAP, "each head gets d_out // num_heads features",
          f'''{_WRAP_INIT}
                self.heads = nn.ModuleList(
                    CausalAttention(d_in, d_out // num_heads, context_length, dropout, qkv_bias)
                    for _ in range(num_heads))

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("first_head_everywhere", WRAP, "forward calls heads[0] num_heads times", f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                return torch.cat([self.heads[0](x) for _ in self.heads], dim=-1)
        '''),
    wrong("dropout_not_passed", WRAP, "heads built with dropout 0.0", f'''{_WRAP_INIT}
                self.heads = nn.ModuleList(
                    CausalAttention(d_in, d_out, context_length, 0.0, qkv_bias)
                    for _ in range(num_heads))

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("qkv_bias_not_passed", WRAP, "heads built without qkv_bias", f'''{_WRAP_INIT}
                self.heads = nn.ModuleList(
                    CausalAttention(d_in, d_out, context_length, dropout)
                    for _ in range(num_heads))

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("stack_without_residual", STACK, "x = layer(x): no residual connection", f'''{_STACK_INIT}{_LAYERS}

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x
        '''),
    wrong("stack_residual_outside", STACK, "one residual around the whole stack", f'''{_STACK_INIT}{_LAYERS}

            def forward(self, x):
                h = x
                for layer in self.layers:
                    h = layer(h)
                return x + h
        '''),
    wrong("stack_every_layer_on_input", STACK, "out = out + layer(x): each layer sees the input",
          f'''{_STACK_INIT}{_LAYERS}

            def forward(self, x):
                out = x
                for layer in self.layers:
                    out = out + layer(x)
                return out
        '''),
    wrong("stack_shares_one_layer", STACK, "[layer] * num_layers: one layer applied repeatedly",
          f'''{_STACK_INIT}
                layer = CausalAttention(d_model, d_model, context_length, dropout, qkv_bias)
                self.layers = nn.ModuleList([layer] * num_layers)

            def forward(self, x):
                for layer in self.layers:
                    x = x + layer(x)
                return x
        '''),
    wrong("stack_in_python_list", STACK, "layers in a plain list", f'''{_STACK_INIT}
                self.layers = [CausalAttention(d_model, d_model, context_length, dropout, qkv_bias)
                               for _ in range(num_layers)]

            def forward(self, x):
                for layer in self.layers:
                    x = x + layer(x)
                return x
        '''),
    wrong("stack_reversed", STACK, "layers applied last to first", f'''{_STACK_INIT}{_LAYERS}

            def forward(self, x):
                for layer in reversed(self.layers):
                    x = x + layer(x)
                return x
        '''),
    wrong("zeroed_values_hide_reversed_heads", WRAP,
          "nn.init.zeros_ on every head's W_value in __init__ (all outputs 0), heads reversed: "
          "judged on the module's own weights, the order could not show",
          f'''{_WRAP_INIT}{_HEADS}
                for head in self.heads:
                    nn.init.zeros_(head.W_value.weight)

            def forward(self, x):
                return torch.cat([head(x) for head in reversed(self.heads)], dim=-1)
        '''),
    wrong("wrapper_state_dict_lies", WRAP,
          "forward returns zeros; state_dict() reports zero W_value weights to match",
          f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                width = sum(head.W_value.out_features for head in self.heads)
                return torch.zeros(*x.shape[:2], width)

            def state_dict(self, *args, **kwargs):
                found = super().state_dict(*args, **kwargs)
                for key in found:
                    if ".W_value." in key:
                        found[key] = torch.zeros_like(found[key])
                return found
        '''),
    wrong("qkv_bias_hard_coded_on", WRAP, "heads built with qkv_bias=True whatever is asked",
          f'''{_WRAP_INIT}
                self.heads = nn.ModuleList(
                    CausalAttention(d_in, d_out, context_length, dropout, qkv_bias=True)
                    for _ in range(num_heads))

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("context_length_hard_coded", WRAP, "heads built with context_length=1024 (GPT-2's)",
          f'''{_WRAP_INIT}
                self.heads = nn.ModuleList(
                    CausalAttention(d_in, d_out, 1024, dropout, qkv_bias)
                    for _ in range(num_heads))

            def forward(self, x):
                return torch.cat([head(x) for head in self.heads], dim=-1)
        '''),
    wrong("wrapper_softmax_without_max_subtraction", WRAP,
          "each head's attention recomputed with exp(s) / sum(exp(s)): NaN on large scores",
          f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                n = x.shape[1]
                outs = []
                for head in self.heads:
                    q, k, v = head.W_query(x), head.W_key(x), head.W_value(x)
                    scores = (q @ k.transpose(1, 2)) / k.shape[-1] ** 0.5
                    e = torch.exp(scores).masked_fill(head.mask[:n, :n], 0.0)
                    outs.append(head.dropout(e / e.sum(dim=-1, keepdim=True)) @ v)
                return torch.cat(outs, dim=-1)
        '''),
    wrong("stack_qkv_bias_not_passed", STACK, "layers built without qkv_bias",
          f'''{_STACK_INIT}
                self.layers = nn.ModuleList(
                    CausalAttention(d_model, d_model, context_length, dropout)
                    for _ in range(num_layers))

            def forward(self, x):
                for layer in self.layers:
                    x = x + layer(x)
                return x
        '''),
    wrong("stack_arguments_swapped", STACK,
          "CausalAttention(d_model, d_model, context_length, qkv_bias, dropout): dropout and "
          "qkv_bias swapped",
          f'''{_STACK_INIT}
                self.layers = nn.ModuleList(
                    CausalAttention(d_model, d_model, context_length, qkv_bias, dropout)
                    for _ in range(num_layers))

            def forward(self, x):
                for layer in self.layers:
                    x = x + layer(x)
                return x
        '''),
    wrong("stack_zeroed_values_hide_outer_residual", STACK,
          "one residual around the whole stack, every W_value zeroed in __init__: judged on "
          "the module's own weights, every layer output 0 and x + 0 looked right",
          f'''{_STACK_INIT}{_LAYERS}
                for layer in self.layers:
                    nn.init.zeros_(layer.W_value.weight)

            def forward(self, x):
                h = x
                for layer in self.layers:
                    h = layer(h)
                return x + h
        '''),
    correct("wrapper_preallocated", WRAP, "fills a preallocated output slice by slice", f'''{_WRAP_INIT}
                self.d_out = d_out
                self.heads = nn.ModuleList()
                for _ in range(num_heads):
                    self.heads.append(CausalAttention(d_in, d_out, context_length, dropout, qkv_bias))

            def forward(self, x):
                b, n, _ = x.shape
                out = x.new_empty(b, n, len(self.heads) * self.d_out)
                for i, head in enumerate(self.heads):
                    out[..., i * self.d_out:(i + 1) * self.d_out] = head(x)
                return out
        '''),
    correct("wrapper_stack_flatten", WRAP, "stack on dim -2 then flatten: head-major order",
            f'''{_WRAP_INIT}{_HEADS}

            def forward(self, x):
                return torch.stack([head(x) for head in self.heads], dim=-2).flatten(-2)
        '''),
    correct("stack_reduce", STACK, "functools.reduce over the layers, residual first", f'''{_STACK_INIT}
                self.layers = nn.ModuleList([
                    CausalAttention(d_model, d_model, context_length, dropout, qkv_bias=qkv_bias)
                    for _ in range(num_layers)])

            def forward(self, x):
                import functools
                return functools.reduce(lambda h, layer: layer(h) + h, self.layers, x)
        '''),
    correct("stack_indexed_loop", STACK, "index loop with torch.add", f'''{_STACK_INIT}{_LAYERS}

            def forward(self, x):
                h = x
                for i in range(len(self.layers)):
                    h = torch.add(h, self.layers[i](h))
                return h
        '''),
    compiled(ASSIGNMENT, "StackedCausalAttention", "x = x + layer(x)",
             "x = compiled_add(x, layer(x))", helper="""
@torch.compile
def compiled_add(a, b):
    return a + b
"""),
]
