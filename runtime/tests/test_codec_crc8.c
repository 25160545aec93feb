/* test_codec_crc8.c: the slice-by-8 CRC-8 equals the bit-by-bit definition (poly 0x07, init 0,
 * MSB first) for every length 0..300 and every alignment, and when fed in pieces. */
#include <stdlib.h>

#include "lunnel/codec.h"
#include "testutil.h"

static uint8_t crc_bits(uint8_t crc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (uint8_t)(crc & 0x80 ? (crc << 1) ^ 0x07 : crc << 1);
    }
    return crc;
}

int main(void)
{
    uint8_t buf[320];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    int bad = 0, bad_bw = 0, bad_split = 0;
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= 308; n++) {
            uint8_t want = crc_bits(0, buf + off, n);
            if (lunnel_crc8(0, buf + off, n) != want) bad++;
            if (lunnel_crc8_bytewise(0, buf + off, n) != want) bad_bw++;
            size_t h = n / 3;
            if (lunnel_crc8(lunnel_crc8(0x5a, buf + off, h), buf + off + h, n - h) !=
                crc_bits(0x5a, buf + off, n))
                bad_split++;
        }
    CHECK_INT(bad, 0);
    CHECK_INT(bad_bw, 0);
    CHECK_INT(bad_split, 0);
    /* Known value: CRC-8/SMBUS("123456789") = 0xF4. */
    CHECK_INT(lunnel_crc8(0, "123456789", 9), 0xF4);
    TEST_DONE();
}
