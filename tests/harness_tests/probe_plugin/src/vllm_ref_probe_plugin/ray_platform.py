from vllm.platforms.cpu import CpuPlatform


class RayCpuPlatform(CpuPlatform):
    # Ray hands out accelerator ids only for accelerator resource types.
    ray_device_key = "GPU"
