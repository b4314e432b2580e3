"""Simulator: a model outbound call center producing dialer events (contract v1) as Kafka deliveries.

    from stream.sim import SimConfig, FaultConfig, generate
    for d in generate(SimConfig(start_ms=..., agents=200, hours=8, faults=FaultConfig.all_on())):
        d.deliver_ms, d.key, d.value   # in delivery order

`Simulator(cfg)` is the same iterable with `stats` (events, injected faults by kind).
See docs/simulator.md. Imports only the stdlib and `stream.contract` (kafka_out is separate).
"""
from stream.sim.config import DEMO_CONFIG, INVALID_REASONS, SCENARIOS, Delivery, FaultConfig, SimConfig
from stream.sim.delivery import Simulator, TsFormatter, generate

__all__ = ["DEMO_CONFIG", "INVALID_REASONS", "SCENARIOS", "Delivery", "FaultConfig", "SimConfig", "Simulator",
           "TsFormatter", "generate"]
