#!/bin/sh
# npm test: the whole suite on this machine, in three stages.
#
# 1. The suite (ava, 2 files at a time): everything but the tests below.
# 2. The systemd containers (the README's service blocks, then the .deb),
#    one after the other, and beside them the reference's UML guests: they
#    load different parts of the machine, and none asserts anything at the
#    microsecond level. (Two containers booting side by side with the guests
#    took a container's boot past its 60 s limit.)
# 3. The system-clock tests in UML guests, alone: they measure precision.
set -e
npm run build
ava
BERKELEYD_UML_TESTS=1 ava dist/test/reference-uml.test.js &
guests=$!
status=0
ava dist/test/container.test.js || status=1
ava dist/test/deb.test.js || status=1
wait "$guests" || status=1
[ "$status" = 0 ]
BERKELEYD_UML_TESTS=1 ava dist/test/sysclock-uml.test.js
