include $(sort $(wildcard $(BR2_EXTERNAL_BALENA_ENGINE_PATH)/package/*/*.mk))
