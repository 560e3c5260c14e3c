#include <doctest/doctest.h>

#include <malloc.h>

#include <vector>

#include "firmware/heap.hpp"

TEST_CASE("model-sized buffers come back from the heap instead of being mapped anew") {
#if defined(__SANITIZE_ADDRESS__)
    // ASan's allocator stands in for glibc's (and refuses mallopt): nothing of glibc's to check.
    MESSAGE("skipped under AddressSanitizer");
#else
    REQUIRE(starling::firmware::keep_model_buffers_in_heap());
    // A model-sized buffer (glibc maps anything over 128 KB on its own by default) is carved
    // from the heap now: its bytes count in the arena, and no chunk is mapped for it.
    const struct mallinfo2 before = mallinfo2();
    std::vector<float> model(235146, 1.0f);
    const struct mallinfo2 during = mallinfo2();
    CHECK(during.hblkhd == before.hblkhd);
    CHECK(during.uordblks >= before.uordblks + model.size() * sizeof(float));
#endif
}
