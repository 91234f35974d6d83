"""The connector class, imported by vLLM only when --kv-transfer-config selects it."""

from vllm.distributed.kv_transfer.kv_connector.v1.example_connector import ExampleConnector


class ExampleKVConnector(ExampleConnector):
    """Your store goes here. The methods to replace (vLLM's KVConnectorBase_V1):

    scheduler half (engine core): get_num_new_matched_tokens, update_state_after_alloc,
    build_connector_meta, request_finished;
    worker half (each worker): start_load_kv, wait_for_layer_load, save_kv_layer, wait_for_save,
    get_block_ids_with_load_errors (report blocks that failed to load, so vLLM recomputes them).
    """
