worker_processes 1
timeout 30
preload_app true
