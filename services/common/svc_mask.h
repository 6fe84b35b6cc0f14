/* Masking numbers typed into free text (R-I6a): mobile numbers,
 * resident ID numbers and any other run of seven or more digits in a ticket's
 * content or address, before the text leaves intake's schema. Pure: no I/O,
 * no globals; intake masks at submit, and both intake and referral mask what
 * they stored before the rule existed. */
#ifndef SVC_MASK_H
#define SVC_MASK_H

#include <stddef.h>

/* How the text is read (R-I6a):
 *  - A digit is an ASCII digit 0-9 or a full-width digit U+FF10..U+FF19.
 *  - A separator is an ASCII space, '-', U+3000 (ideographic space) or U+FF0D
 *    (full-width hyphen-minus). One to three separators in a row (any mix)
 *    between two digits join them into one run ("139 1234 5678",
 *    "0539 - 8123456"); anywhere else a separator is plain text, and four or
 *    more in a row end the run.
 *  - Anything else ends a run: letters, Chinese characters, punctuation such
 *    as '.', '/', ',', '(' or '+', tabs and line ends. Neighbouring letters do
 *    not protect a run: "QQ123456789" is masked like any other run. So dates
 *    and ranges written with hyphens or spaces ("2026-10-01", "2000 - 3000")
 *    are runs of 8 digits and masked; "2026年10月1日", "2026/10/01" are not.
 *  - After exactly 17 digits, an X or x (ASCII or full-width) directly after
 *    the last digit is the run's last character: a resident ID number's check
 *    character. Anywhere else an X is plain text.
 * How a run of n characters (digits, and the check character) is written:
 *  - n <= 6: exactly as typed (amounts, house numbers, years, a 6-digit run).
 *  - n == 18 (17 digits and a digit or X): a resident ID number, its first 6
 *    and last 4 characters kept: "110105********123X".
 *  - n == 11, starting 13..19: a mobile number, "138****5678".
 *  - any other n >= 7 (landlines, bank cards, a 17-digit run): only the last
 *    4 digits kept: "0539-8123456" -> "*******3456".
 *  A masked run is written in ASCII without its separators: full-width digits
 *  become ASCII, the check character 'X', each hidden digit '*'.
 * Input that is not UTF-8 (a stray or truncated byte, an overlong or
 * surrogate sequence, a code point above U+10FFFF) and NUL bytes become one
 * '?' per byte, so the output is valid UTF-8 without NUL whatever the input.
 * The output is never longer than the input, and masking is idempotent:
 * masked text is left as it is. Classification and compound matching read
 * the original text, never this. */

/* The bytes an output buffer needs for an input of len bytes. */
#define SVC_MASK_CAP(len) ((len) + 1)
/* What svc_mask_text returns on a usage error. */
#define SVC_MASK_ERROR ((size_t)-1)

/* Masks the len bytes at in (R-I6a, above) into out, which holds cap bytes,
 * at least SVC_MASK_CAP(len), and is NUL-terminated. in and out must not
 * overlap. Returns the output length (without the NUL), or SVC_MASK_ERROR
 * when cap is too small or in is NULL with len > 0 (out is then "" if cap >
 * 0). *changed, unless NULL, is set to 1 when the output differs from the
 * input, else 0. */
size_t svc_mask_text(const char *in, size_t len, char *out, size_t cap, int *changed);

/* svc_mask_text of the C string s (NULL reads as "") into a fresh string the
 * caller frees. NULL when out of memory. */
char *svc_mask_dup(const char *s, int *changed);

/* A regular expression (Postgres's ~, UTF-8 database) matching every text
 * that masking changes, and possibly more: seven digits of either width with
 * at most three separators between neighbours. For finding, in a start-up
 * clean-up, the rows worth reading; svc_mask_text decides. */
#define SVC_MASK_CANDIDATE_RE "[0-9０-９](?:[- 　－]{0,3}[0-9０-９]){6}"

/* Events already published (R-I6a clean-up): decodes the n bytes at in as a
 * message of type d, masks its string fields named in fields[0..n_fields)
 * (at most 8; each a singular string field of d) and, if that changed
 * anything, encodes it again (other fields, unknown ones included, are kept).
 * Returns 1 with *out (malloc'd, the caller frees it) and *out_len, 0 when
 * nothing changed, -1 when in cannot be decoded (malformed, or a string that
 * is not UTF-8), a field is not such a string field, or out of memory. */
struct ProtobufCMessageDescriptor;
int svc_mask_pb(const struct ProtobufCMessageDescriptor *d, const char *const *fields,
                size_t n_fields, const unsigned char *in, size_t n, unsigned char **out,
                size_t *out_len);

/* R-I6: the digits of a phone number that identify a caller (pseudonyms,
 * masks, repeats): only digits kept, a +86 / 0086 / 86 prefix before an
 * 11-digit mobile number dropped. Writes at most n - 1 digits and a NUL;
 * returns the digit count (0 for none or if n is too small). */
size_t svc_phone_digits(const char *phone, char *out, size_t n);

#endif
