"""Helpers for the R-I6a test drivers: numbers typed into free text in every
form the rule names (with their masked forms), the forms of a number to
search for, and a search of every text, JSON and bytea column of the
cluster's schemas."""
import wt

FW = str.maketrans("0123456789-", "０１２３４５６７８９－")


def number(i):
    """The i-th number typed into a ticket: (as typed, as masked). Digits
    vary with i, so that every ticket's number is its own."""
    a, b = f"{(7 * i + 3) % 10000:04d}", f"{(13 * i + 5) % 10000:04d}"
    bank19, landline = f"62170012{a}{b}{a[1:]}", f"0539-8{a[1:]}{b[:3]}"
    kinds = [
        (f"139{a}{b}", f"139****{b}"),                          # mobile, plain
        (f"138 {a} {b}", f"138****{b}"),                        # spaced
        (f"150-{a}-{b}", f"150****{b}"),                        # hyphenated
        (f"186{a}{b}".translate(FW), f"186****{b}"),            # full-width
        (f"110105{a}{b}123X", "110105********123X"),            # resident ID ending in X
        (f"3701021985{a}{b}", f"370102********{b}"),            # resident ID, 18 digits
        (f"6222 0212 {a} {b}", f"************{b}"),             # bank card, 16 digits
        (bank19, "*" * 15 + bank19[-4:]),                       # bank card, 19 digits
        (landline, "*" * 7 + landline[-4:]),                    # landline
    ]
    return kinds[i % len(kinds)]


def digits(s):
    """The ASCII digits (and check character) of a typed number."""
    out = ""
    for c in s:
        if "０" <= c <= "９":
            out += chr(ord(c) - ord("０") + ord("0"))
        elif c in "0123456789Xx":
            out += c.upper()
    return out


def needles(typed):
    """The forms of the typed numbers to search for: as typed, in ASCII
    digits, in full-width digits."""
    out = set()
    for t in typed:
        d = digits(t)
        out |= {t, d, d.translate(FW)}
    return sorted(out)


def qi(s):
    return '"' + s.replace('"', '""') + '"'


def _hexed(column, dtype):
    """SQL for a column's value as hex: bytea raw, anything else as UTF-8 text."""
    v = qi(column) if dtype == "bytea" else f"convert_to({qi(column)}::text, 'UTF8')"
    return f"coalesce(encode({v}, 'hex'), '')"


def values(schema, table, columns):
    """The values of the columns [(name, type)] of a table, one list of
    bytes per column (NULLs left out)."""
    rows = wt.sql(f"SELECT {', '.join(_hexed(c, d) for c, d in columns)}, 1"
                  f" FROM {qi(schema)}.{qi(table)}")
    return [[bytes.fromhex(r[j]) for r in rows if r[j]] for j in range(len(columns))]


def hits(blobs, forms):
    """The forms found in any of the byte strings."""
    enc = [(n, n.encode()) for n in forms]
    return sorted({n for b in blobs for n, e in enc if e in b})


def columns(schemas=None):
    """{(schema, table): [(column, type)]} of every text, JSON and bytea
    column (arrays and enums too) of the base tables, all schemas or those
    named."""
    rows = wt.sql("SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
                  " FROM information_schema.columns c JOIN information_schema.tables t"
                  " USING (table_catalog, table_schema, table_name)"
                  " WHERE t.table_type = 'BASE TABLE' AND c.data_type IN"
                  " ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb', 'ARRAY',"
                  "  'USER-DEFINED', 'name')"
                  " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')")
    out = {}
    for s, t, c, d in rows:
        if schemas is None or s in schemas:
            out.setdefault((s, t), []).append((c, d))
    return out


def search(forms, skip=(("intake", "callers"),), schemas=None):
    """[("schema.table.column", form)] of the forms found anywhere but the
    tables in skip, and the number of columns searched."""
    cols = {k: v for k, v in columns(schemas).items() if k not in skip}
    found = []
    for (s, t), cs in sorted(cols.items()):
        for (c, _), blobs in zip(cs, values(s, t, cs)):
            found += [(f"{s}.{t}.{c}", n) for n in hits(blobs, forms)]
    return found, cols
