"""The control loop: observe, forecast, plan, apply on an injected clock; profiles."""
