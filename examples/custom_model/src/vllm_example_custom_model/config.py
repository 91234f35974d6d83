from transformers import PretrainedConfig


class ToyConfig(PretrainedConfig):
    model_type = "toy_lm"

    def __init__(self, vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=1, head_dim=64, rms_norm_eps=1e-5,
                 rope_theta=10000.0, max_position_embeddings=2048, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim  # vLLM's CPU attention supports 32, 64, 80, 96, 112, 128, ...
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.max_position_embeddings = max_position_embeddings
        # ToyLM always ties the output head to the input embedding.
        kwargs["tie_word_embeddings"] = True
        super().__init__(**kwargs)
