using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Tests.Serialization;

/// <summary>Bad input names its line and says what to fix; nothing after it is read.</summary>
public sealed class TraceReaderTests
{
    private const string Host = """{"type":"HostDescribed","arch":"arm64","kernel":"6.17.2","pageSize":4096,"caps":{}}""";

    private static TraceReadResult Read(params string[] lines) => NdjsonTraceReader.Read("t.ndjson", new StringReader(string.Join('\n', lines)));

    [Theory]
    [InlineData("""{"type":"Bogus"}""", "unknown event type 'Bogus'")]
    [InlineData("""{"type":"VmaMapped",""", "bad JSON")]
    [InlineData("""{"type":"GuestFaulted","access":"read"}""", "missing field 'gpa'")]
    [InlineData("""{"type":"VmaUnmapped","start":"0x1001","length":"0x1000"}""", "unaligned address: field 'start' 0x1001")]
    [InlineData("""{"type":"GuestFaulted","gpa":"0xzz","access":"read"}""", "field 'gpa': expected an unsigned integer")]
    [InlineData("""{"type":"GuestFaulted","gpa":"0x1000","access":"poke"}""", "field 'access': \"poke\" is not one of")]
    [InlineData("""{"type":"MemslotSet","slot":0,"gpa":0,"size":4096,"hva":4096,"flags":["KVM_MEM_BOGUS"]}""", "is not one of KVM_MEM_LOG_DIRTY_PAGES")]
    [InlineData("""{"type":"FaultResolved","inputSeq":1}""", "derived by the engine")]
    [InlineData("""[1,2]""", "expected a JSON object")]
    [InlineData("""{"gpa":1}""", "missing field 'type'")]
    public void A_bad_line_is_reported_with_its_line_number(string bad, string reason)
    {
        var r = Read("# comment", Host, "", bad, Host);
        Assert.NotNull(r.Error);
        Assert.Equal(4, r.Error.Line);
        Assert.Contains(reason, r.Error.Reason, StringComparison.Ordinal);
        Assert.StartsWith("t.ndjson:4: ", r.Error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Time_going_backwards_names_both_lines()
    {
        var r = Read(
            """{"type":"GuestMemfdClosed","ts":"2026-03-02T10:00:00.002Z","fd":1}""",
            """{"type":"GuestMemfdClosed","fd":2}""",
            """{"type":"GuestMemfdClosed","ts":"2026-03-02T10:00:00.001Z","fd":3}""");
        Assert.Equal(3, r.Error!.Line);
        Assert.Contains("time goes backwards", r.Error.Reason, StringComparison.Ordinal);
        Assert.Contains("at line 1", r.Error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Alignment_follows_the_host_page_size()
    {
        var host16k = """{"type":"HostDescribed","arch":"arm64","kernel":"6.17.2","pageSize":16384}""";
        var vma = """{"type":"VmaUnmapped","start":"0x1000","length":"0x4000"}""";
        Assert.Null(Read(vma).Error);
        Assert.Equal(2, Read(host16k, vma).Error!.Line);
    }

    [Fact]
    public void Addresses_accept_hex_strings_decimal_strings_and_integers()
    {
        var r = Read(
            """{"type":"GuestFaulted","gpa":"0x40000200000","access":"write"}""",
            """{"type":"GuestFaulted","gpa":4398048608256,"access":"write"}""",
            """{"type":"GuestFaulted","gpa":"4398048608256","access":"write"}""");
        Assert.Null(r.Error);
        Assert.All(r.Events, e => Assert.Equal(new Gpa(0x40000200000), ((GuestFaulted)e.Event).Gpa));
    }

    [Fact]
    public void Unknown_fields_are_kept_and_errno_names_are_accepted()
    {
        var r = Read("""{"type":"MemslotSet","slot":0,"gpa":0,"size":4096,"hva":4096,"result":"-EEXIST","note":"x"}""");
        var e = Assert.Single(r.Events);
        Assert.Equal(Errno.EEXIST, ((MemslotSet)e.Event).Result);
        Assert.Equal("note", Assert.Single(e.Extras).Key);
    }

    [Fact]
    public void The_shipped_samples_read_without_error()
    {
        foreach (var f in Directory.GetFiles(Infrastructure.Paths.Samples, "*.ndjson"))
        {
            var r = NdjsonTraceReader.Read(f, File.OpenRead(f));
            Assert.Null(r.Error);
            Assert.NotEmpty(r.Events);
        }
    }
}
