using System.Globalization;
using System.Text;
using CsvHelper;
using Postback.Orders;

namespace Postback.ExportProfiles;

/// One row of a file: the order as it is when the file is rendered, and the customer type of
/// the route that fired (what [customerType] renders).
public sealed record FileRow(OrderData Order, RenderContext Context);

/// Renders a file profile's rows as CSV, per RFC 4180:
/// - UTF-8 without a byte order mark, CRLF after every record (the last one too);
/// - a field is quoted only when it must be: it holds the delimiter, a double quote, CR or LF
///   (a quote inside is doubled);
/// - columns in mapping order, a header row of export names unless the profile turns it off;
/// - values exactly as a postback renders them (RequestRenderer.Lookup): same merge tags,
///   dates, amounts and productN_* columns. Card data is never stored, so it never appears;
/// - a profile without mappings yet (as the admin form creates it) has no columns, and a CSV
///   record cannot have zero fields: its file is empty (0 bytes), whatever the rows.
public static class CsvFile
{
    public static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    public static byte[] Render(IReadOnlyList<ExportMapping> mappings, IEnumerable<FileRow> rows, bool header, string delimiter)
    {
        if (mappings.Count == 0)
        {
            return [];
        }
        using var stream = new MemoryStream();
        using (var csv = CsvWriter.Create(stream, Options(delimiter), leaveOpen: true))
        {
            if (header)
            {
                foreach (var mapping in mappings)
                {
                    csv.WriteField(mapping.ExportName);
                }
                csv.EndRecord();
            }
            foreach (var row in rows)
            {
                foreach (var mapping in mappings)
                {
                    csv.WriteField(Value(mapping, row));
                }
                csv.EndRecord();
            }
        }
        return stream.ToArray();
    }

    public static string Value(ExportMapping mapping, FileRow row) =>
        mapping.Field is not null ? RequestRenderer.Lookup(mapping.Field, row.Order, row.Context) : mapping.Static ?? "";

    // CsvHelper's defaults are RFC 4180 (CRLF, quote when needed, no byte order mark); spelt
    // out here because they are the file format the receiving end was promised. Formula
    // protection stays off: a cell must hold exactly the rendered value.
    private static CsvWriterOptions Options(string delimiter) => CsvWriterOptions.Default with
    {
        Separator = delimiter[0],
        NewLine = "\r\n",
        Quoting = CsvQuoting.WhenNeeded,
        WriteByteOrderMark = false,
        Injection = CsvInjection.None,
    };
}
