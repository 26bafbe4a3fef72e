"""MQTT: the gateway's supervised paho client and the embedded amqtt broker."""
