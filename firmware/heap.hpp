#pragma once
// Model-sized buffers (a model decoded, encoded, sealed: 0.1-1 MB, several per exchange) come
// from the heap and go back to it: glibc would otherwise map and unmap each one, and every
// page of every buffer would fault in afresh (a third of a received model's CPU in a profile).

namespace starling::firmware {

// Sets malloc's mmap threshold above any model buffer and keeps freed memory for reuse (a few
// MB at most held back). Call once at start-up, before the threads. false when glibc refused.
bool keep_model_buffers_in_heap() noexcept;

}  // namespace starling::firmware
