namespace Postback.Retention;

/// What a sweep or an erasure removed, by kind.
public sealed class RemovedCounts
{
    public int Orders { get; set; }
    public int Events { get; set; }
    public int Deliveries { get; set; }
    public int DeliveryAttempts { get; set; }
    public int Confirmations { get; set; }
    public int ConfirmationAttempts { get; set; }
    public int AlertEmails { get; set; }
    public int InboundLogEntries { get; set; }
    public int HistoryLinesExpired { get; set; }
    public int FileRuns { get; set; }

    public int Total => Orders + Events + Deliveries + DeliveryAttempts + Confirmations + ConfirmationAttempts + AlertEmails + InboundLogEntries + FileRuns;

    public void Add(RemovedCounts other)
    {
        Orders += other.Orders;
        Events += other.Events;
        Deliveries += other.Deliveries;
        DeliveryAttempts += other.DeliveryAttempts;
        Confirmations += other.Confirmations;
        ConfirmationAttempts += other.ConfirmationAttempts;
        AlertEmails += other.AlertEmails;
        InboundLogEntries += other.InboundLogEntries;
        HistoryLinesExpired += other.HistoryLinesExpired;
        FileRuns += other.FileRuns;
    }
}

/// What erasing one customer removed, by kind.
public sealed record ErasureCounts(
    string CustomerId, int CancelledDeliveries, int Orders, int Events, int Deliveries, int DeliveryAttempts, int HistoryLines,
    int Confirmations, int ConfirmationAttempts, int AlertEmails, int InboundLogEntries, int FileRunFiles);
