"""The adapters' I/O: record readers (file tail, database polls), sinks (Kafka, JSONL),
checkpoints, bad-input handling, metrics and the run loop that ties them to a pure mapper."""
