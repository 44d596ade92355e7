namespace Postback.Orders;

/// Card data is never stored, logged or forwarded (PCI DSS keeps a hub like this out of its
/// scope only as long as no card number reaches it). It is recognised two ways:
///
/// - by field name: card numbers and security codes under the names CRMs and checkouts use
///   (cardNumber, cc_number, pan, cvv, cvv2, cvc, ccv, csc, securityCode, ...), compared with
///   separators removed and case ignored;
/// - by value: anything that looks like a payment card number, whatever the field is called.
///   The rule: after trimming, only digits, spaces and dashes; 13 to 19 digits; the first not 0;
///   and the digits pass the Luhn check. Order ids, phone numbers and amounts are digits too, so
///   each part of the rule is there to keep them: a phone number in international form carries
///   a '+', a national one has at most 12 digits; zero-padded placeholders start with 0; and only
///   one random 13-19 digit number in ten passes Luhn. The order id itself is never checked: it
///   is the key the order is stored under, and dropping it would refuse the order.
public static class CardData
{
    public static bool IsCardName(string key)
    {
        // Asked for every field of every order: the name is folded on the stack, not allocated.
        Span<char> buffer = key.Length <= 256 ? stackalloc char[key.Length] : new char[key.Length];
        var length = 0;
        foreach (var c in key)
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                buffer[length++] = char.ToLowerInvariant(c);
            }
        }
        ReadOnlySpan<char> k = buffer[..length];
        return k is "cc" or "pan" or "cardno" or "ccno" or "csc" or "cvn" or "cvd"
            || k.Contains("cardnumber", StringComparison.Ordinal) || k.Contains("ccnumber", StringComparison.Ordinal)
            || k.Contains("cardnum", StringComparison.Ordinal) || k.Contains("ccnum", StringComparison.Ordinal)
            || k.Contains("creditcard", StringComparison.Ordinal) || k.Contains("securitycode", StringComparison.Ordinal)
            || k.Contains("cardsecurity", StringComparison.Ordinal) || k.Contains("cardverification", StringComparison.Ordinal)
            || k.Contains("cardcode", StringComparison.Ordinal)
            || k.Contains("cvv", StringComparison.Ordinal) || k.Contains("cvc", StringComparison.Ordinal) || k.Contains("ccv", StringComparison.Ordinal);
    }

    public static bool LooksLikeCardNumber(string value)
    {
        var text = value.AsSpan().Trim();
        Span<int> digits = stackalloc int[19];
        var count = 0;
        foreach (var c in text)
        {
            if (char.IsAsciiDigit(c))
            {
                if (count == digits.Length)
                {
                    return false;
                }
                digits[count++] = c - '0';
            }
            else if (c is not (' ' or '-'))
            {
                return false;
            }
        }
        if (count < 13 || digits[0] == 0)
        {
            return false;
        }
        var sum = 0;
        for (var i = 0; i < count; i++)
        {
            var d = digits[count - 1 - i];
            if (i % 2 == 1)
            {
                d *= 2;
                if (d > 9)
                {
                    d -= 9;
                }
            }
            sum += d;
        }
        return sum % 10 == 0;
    }
}
