/*
 * The server's TLS profile: TLS 1.2 and 1.3 only, forward-secret AEAD suites only (Mozilla's
 * "intermediate" list, minus groups OpenSSL 3.0 lacks), no compression, no renegotiation,
 * mandatory client certificates from the deployment CA with clientAuth purpose, a CRL when
 * configured. Session resumption is off: a resumed session skips certificate verification,
 * and a certificate revoked since must not get back in that way; our clients make one request
 * per connection, so nothing is lost.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"

static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

void tls_error_string(char *buf, size_t len)
{
    unsigned long e, first = 0;
    while ((e = ERR_get_error()) != 0) {
        if (!first && ERR_GET_LIB(e) != 0)
            first = e;
    }
    if (first)
        ERR_error_string_n(first, buf, len);
    else
        snprintf(buf, len, "unknown TLS error");
}

/* The CA certificates of a PEM file; NULL when there are none. */
static STACK_OF(X509) * read_cas(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    STACK_OF(X509) *cas = sk_X509_new_null();
    X509 *x;
    while (cas && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(cas, x))
            X509_free(x);
    }
    fclose(f);
    ERR_clear_error(); /* the end of the file reads as an error */
    if (cas && sk_X509_num(cas) == 0) {
        sk_X509_free(cas);
        cas = NULL;
    }
    return cas;
}

/*
 * A CRL is used only when one of our CAs issued and signed it and it is still current. Any
 * other CRL would make OpenSSL refuse every client ("unknown CA", "CRL expired"): a typo in a
 * file name must fail the start or the reload, not lock every social worker out at night.
 */
static bool crl_usable(X509_CRL *crl, STACK_OF(X509) * cas, const char *path, char *err,
                       size_t errlen)
{
    /* Every CA of the issuer's name is tried: during a rollover the old and the new CA have
     * the same name and different keys, and each signs its own list. */
    bool named = false, signed_by_one = false;
    for (int i = 0; i < sk_X509_num(cas) && !signed_by_one; i++) {
        X509 *ca = sk_X509_value(cas, i);
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
            continue;
        named = true;
        EVP_PKEY *key = X509_get0_pubkey(ca);
        signed_by_one = key && X509_CRL_verify(crl, key) == 1;
    }
    ERR_clear_error();
    if (!named) {
        snprintf(err, errlen, "%s: the revocation list was not issued by the client CA", path);
        return false;
    }
    if (!signed_by_one) {
        snprintf(err, errlen,
                 "%s: the revocation list's signature does not verify with any client CA of its "
                 "issuer's name",
                 path);
        return false;
    }
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    if (next && X509_cmp_current_time(next) <= 0) {
        snprintf(err, errlen, "%s: the revocation list has expired (its next update is past)",
                 path);
        return false;
    }
    return true;
}

static bool load_crl(X509_STORE *store, const char *path, const char *ca_path, char *err,
                     size_t errlen)
{
    STACK_OF(X509) *cas = read_cas(ca_path);
    FILE *f = fopen(path, "r");
    bool ok = false;
    unsigned n = 0;
    X509_CRL *crl;
    if (!cas) {
        snprintf(err, errlen, "%s: no CA certificate in the file", ca_path);
        goto out;
    }
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the revocation list", path);
        goto out;
    }
    while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
        bool usable = crl_usable(crl, cas, path, err, errlen);
        int added = usable && X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (!usable)
            goto out;
        if (!added) {
            snprintf(err, errlen, "%s: cannot use the revocation list", path);
            goto out;
        }
        n++;
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    if (n == 0)
        snprintf(err, errlen, "%s: no PEM revocation list in the file", path);
    ok = n > 0;
out:
    if (f)
        fclose(f);
    if (cas)
        sk_X509_pop_free(cas, X509_free);
    ERR_clear_error();
    return ok;
}

SSL_CTX *tls_server_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
    char why[256];
    static const unsigned char sid_ctx[] = "fristadd";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:prime256v1:secp384r1") != 1) {
        snprintf(err, errlen, "cannot set the cipher profile");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        tls_error_string(why, sizeof why);
        snprintf(err, errlen, "%s: cannot load the server certificate: %s", cfg->tls_cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_error_string(why, sizeof why);
        snprintf(err, errlen, "%s: cannot load the server key: %s", cfg->tls_key, why);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1) {
        tls_error_string(why, sizeof why);
        snprintf(err, errlen, "%s: cannot load the client CA: %s", cfg->tls_ca, why);
        goto fail;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca);
    if (!names) {
        snprintf(err, errlen, "%s: no CA certificate in the file", cfg->tls_ca);
        goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    if (cfg->tls_crl[0]) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        if (!load_crl(store, cfg->tls_crl, cfg->tls_ca, err, errlen))
            goto fail;
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

/* The one value of a subject entry, as UTF-8; false when absent, repeated or unusable. */
static bool one_entry(X509_NAME *subj, int nid, char *out, size_t cap, unsigned *count)
{
    int pos = -1;
    *count = 0;
    out[0] = '\0';
    while ((pos = X509_NAME_get_index_by_NID(subj, nid, pos)) >= 0) {
        (*count)++;
        if (*count > 1)
            continue;
        unsigned char *utf8 = NULL;
        int n =
            ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, pos)));
        if (n < 0)
            return false;
        bool ok = (size_t)n < cap && memchr(utf8, 0, (size_t)n) == NULL;
        if (ok) {
            memcpy(out, utf8, (size_t)n);
            out[n] = '\0';
        }
        OPENSSL_free(utf8);
        if (!ok)
            return false;
    }
    return *count == 1;
}

/* "sha256:" and the lower-case hex of the certificate's SHA-256 fingerprint. */
static bool fingerprint(X509 *cert, char *out, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (cap < 7 + 64 + 1 || X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
        return false;
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return true;
}

/*
 * The person who holds the certificate: its subject's one serialNumber, as SITHS cards carry
 * an HSA-id; without one, the certificate's fingerprint. NULL when the certificate cannot name
 * one (a repeated or malformed serialNumber, or one shaped like a personal identity number,
 * which Fristad never stores): then *why says so and the fingerprint stands in.
 */
static const char *person_of(X509 *cert, char *out, size_t cap, const char **why)
{
    char serial[PROTO_PERSON_MAX + 1];
    unsigned n;
    bool one = one_entry(X509_get_subject_name(cert), NID_serialNumber, serial, sizeof serial, &n);
    *why = NULL;
    if (n == 0 || !one) {
        if (n > 0)
            *why = "the certificate's subject must have at most one serialNumber (its person) "
                   "of at most 80 characters";
        return fingerprint(cert, out, cap) ? out : NULL;
    }
    bool ok = serial[0] != '\0';
    for (const char *c = serial; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             (c > serial && (*c == '-' || *c == '_' || *c == '.' || *c == ':' || *c == '/'));
    if (!ok)
        *why = "the certificate's serialNumber (its person) may hold only letters, digits and "
               ". _ - : /";
    else if (proto_has_personal_number(serial, strlen(serial)))
        *why = "the certificate's serialNumber looks like a personal identity number; Fristad "
               "stores none: name the person by an HSA-id";
    if (*why)
        return fingerprint(cert, out, cap) ? out : NULL;
    snprintf(out, cap, "%s", serial);
    return out;
}

void tls_peer_principal(SSL *ssl, struct principal *out)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    char cn[128], ou[64], person[PROTO_PERSON_MAX + 1] = "";
    const char *person_why = NULL;
    unsigned n_cn, n_ou;
    memset(out, 0, sizeof *out);
    if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) {
        snprintf(out->why, sizeof out->why, "no verified client certificate");
        return;
    }
    if (!person_of(peer, person, sizeof person, &person_why))
        person_why = "the certificate's fingerprint cannot be computed";
    X509_NAME *subj = X509_get_subject_name(peer);
    if (!one_entry(subj, NID_commonName, cn, sizeof cn, &n_cn)) {
        snprintf(out->why, sizeof out->why, "the certificate must have exactly one CN");
    } else if (!one_entry(subj, NID_organizationalUnitName, ou, sizeof ou, &n_ou)) {
        snprintf(out->why, sizeof out->why, "the certificate must have exactly one OU: its role");
    } else {
        authz_principal_set(out, ou, cn);
        if (out->valid && person_why) {
            out->valid = false;
            snprintf(out->why, sizeof out->why, "%s", person_why);
        }
    }
    snprintf(out->person, sizeof out->person, "%s", person);
}

/*
 * The whole chain again, against ctx's trust store and revocation lists, as a handshake made
 * now would verify it: a CA taken out of the file, a revocation and an expiry since the
 * handshake all show here.
 */
bool tls_peer_verify(SSL_CTX *ctx, SSL *ssl, char *why, size_t whylen)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    bool ok = false;
    snprintf(why, whylen, "its certificate cannot be verified again");
    if (peer && store && vc &&
        X509_STORE_CTX_init(vc, store, peer, SSL_get_peer_cert_chain(ssl)) == 1) {
        X509_STORE_CTX_set_purpose(vc, X509_PURPOSE_SSL_CLIENT);
        X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(vc), 4);
        ok = X509_verify_cert(vc) == 1;
        if (!ok)
            snprintf(why, whylen, "its certificate no longer verifies: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
    }
    X509_STORE_CTX_free(vc);
    ERR_clear_error();
    return ok;
}

static bool asn1_time_ms(const ASN1_TIME *t, int64_t *ms)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    time_t secs = timegm(&tm);
    if (secs == (time_t)-1)
        return false;
    *ms = (int64_t)secs * 1000;
    return true;
}

bool tls_peer_not_after(SSL *ssl, int64_t *ms)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    bool found = false;
    int64_t earliest = INT64_MAX, t;
    if (peer && asn1_time_ms(X509_get0_notAfter(peer), &t)) {
        earliest = t;
        found = true;
    }
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        if (asn1_time_ms(X509_get0_notAfter(sk_X509_value(chain, i)), &t) && t < earliest) {
            earliest = t;
            found = true;
        }
    }
    *ms = earliest;
    return found;
}
